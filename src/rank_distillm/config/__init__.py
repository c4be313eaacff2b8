"""The floor every wing stands on: config errors, their wording and config values as plain
data. Imports nothing else from the package."""
