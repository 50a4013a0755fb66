"""The schema's forward-only migrations: the numbered `.sql` files of this folder.

A package only so that they ship inside the server's wheel, as
`energy_server.migrations`, and are found wherever it is installed.
"""
