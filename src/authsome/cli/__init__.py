"""The command-line front end: parsing and rendering only, no business logic."""
