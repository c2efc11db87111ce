"""The connector contract suite, parametrized over the vendor harnesses registered in vendors.py."""
