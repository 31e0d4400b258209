"""Importing this module imports every constructor the catalog names (`catalog.import_all`).

Named in the worker processes' preload (shared/executors.py WORKER_MODULES): the fork server
pays the imports once, and every worker it forks starts with them; the serving process never
imports this module, and keeps loading a kind's module at its first use.
"""

from shared.catalog import import_all

import_all()
