"""Users' own claims, written as TOML files (README, "Writing a claim"): read and
checked (validate.py) into a Definition (definition.py), built into an ordinary Claim
timed by the cmdtime kernel (build.py), selected by path (files.py), and registered by
their first run (registration.py)."""
