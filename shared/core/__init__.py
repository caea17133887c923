"""The pure core: trade rows and their keys, the chain of parts, messages, errors, the table spec.
Nothing here does I/O or knows an adapter; everything else imports from here."""
