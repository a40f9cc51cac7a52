"""A small Django project for the benchmarks: the package's sign-in endpoint
next to the comparison views (login floor, plain view, naive sign-in)."""
