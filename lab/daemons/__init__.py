"""Configuration and command lines for the real resolver daemons (one module per software)."""
