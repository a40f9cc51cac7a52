#!/usr/bin/env python3
"""Django's command-line utility for the example project."""

import os
import sys


def main() -> None:
    # Not setdefault: a DJANGO_SETTINGS_MODULE left in the environment (the
    # test suite's, say) must not turn this demo into another project.
    os.environ["DJANGO_SETTINGS_MODULE"] = "example.settings"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
