"""The service layer: one function per command, each one transaction with its audit event."""
