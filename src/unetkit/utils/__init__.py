"""Small helpers shared across unetkit's subpackages."""
