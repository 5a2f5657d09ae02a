"""Configs of ``python -m facezoo.infer`` (a package, so that ``facezoo.infer.main()`` also finds them when imported)."""
