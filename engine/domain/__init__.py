"""The pure domain: SOP model, validator, state machine, working calendar.

Nothing in this package imports a web, queue or database framework, and nothing here
reads the wall clock: time is always passed in.
"""
