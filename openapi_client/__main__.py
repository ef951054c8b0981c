"""``python -m openapi_client``: the command line (see ``openapi_client.cli``).

Help and errors name the program ``python -m openapi_client``, as it was started, so that
the examples they show can be pasted back as they are.
"""

import sys

from openapi_client.cli import main

sys.exit(main(prog="python -m openapi_client"))
