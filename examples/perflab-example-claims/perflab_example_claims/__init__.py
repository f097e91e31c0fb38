"""Claims shipped by a package of their own: perflab finds them through the
``perflab.claims`` entry point of pyproject.toml, with no change to perflab."""
