"""The contract suite run against a toy vendor, to show the suite itself catches what it should."""
