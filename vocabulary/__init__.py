"""The words every role shares: resize options, the upload check, error codes, the callback policy.

The API validates with them, the events carry them, the engine and the
notifier act on them; no role imports another role's package for them.
"""
