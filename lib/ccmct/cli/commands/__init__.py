"""One module per ``ccmct`` command; each defines ``register(subparsers)``."""
