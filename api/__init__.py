"""The REST API: a thin Flask layer that parses, calls the service layer and renders."""
