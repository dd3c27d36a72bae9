"""Signed outcome POSTs to the callback_url a request names, read from the results topic."""
