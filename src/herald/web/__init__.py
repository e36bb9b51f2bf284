"""What Herald serves to browsers: the inbox widget (``static/``) and the ``--demo`` page.

The admin console will live beside them, in ``web/console``.
"""
