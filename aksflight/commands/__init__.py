"""One module per `aksflight` sub-command; each exposes `register(subparsers)`."""
