"""``python -m openapi_client``: the command line (see ``openapi_client.cli``)."""

import sys

from openapi_client.cli import main

sys.exit(main())
