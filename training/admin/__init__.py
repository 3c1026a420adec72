"""The lab's Django admin for staff: nodes, models, presets, runs and their history.

Importing the modules registers their ModelAdmins with the default admin site.
"""

from training.admin import actions, catalog, evaluations, lab, nodes, records, runs

__all__ = ["actions", "catalog", "evaluations", "lab", "nodes", "records", "runs"]
