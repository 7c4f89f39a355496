"""What runs inside a container, how healthy and loaded it is, and what goes wrong."""
