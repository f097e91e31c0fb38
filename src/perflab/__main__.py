from perflab.cli.main import entry

entry()
