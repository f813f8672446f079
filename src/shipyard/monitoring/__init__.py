"""Drift monitoring: is today's data still like the data the model learned from?

    import shipyard as sy
    from shipyard.monitoring import drift_report, prepare_reference

    report = drift_report("dataset:credit@3", todays_frame)      # each column tested
    report.to_dict()    # {"drift_share": 0.2, "columns": {"income": {"test": ..., ...}}}
    report.to_html("drift.html")                                 # one self-contained page

    reference = prepare_reference("dataset:credit@3")            # read once ...
    blob = reference.to_bytes()                                  # ... stored once
    drift_report(Reference.from_bytes(blob), window)             # each window costs its rows

    create_monitor("credit", "dataset:credit@3", window="1h")    # a deployment's log, windowed
    run_monitor("credit")                                        # every window not yet evaluated
    monitor_results("credit")                                    # pyarrow.Table, window x column

Tests (``tests=`` one name, or a mapping column -> name; "auto" by default):

==================  =====================  ==========  =================================
name                columns                drift when  what
==================  =====================  ==========  =================================
``ks``              numeric                p < 0.05    two-sample Kolmogorov-Smirnov,
                                                       equal to scipy.stats.ks_2samp
``wasserstein``     numeric                >= 0.1      Wasserstein-1 / reference std
``psi``             numeric, categorical   >= 0.1      population stability index,
                                                       reference deciles, epsilon 1e-4
``jensen_shannon``  numeric, categorical   >= 0.1      Jensen-Shannon distance, base 2
``chi_square``      categorical            p < 0.05    chi-square test of homogeneity
==================  =====================  ==========  =================================

"auto" picks ``ks`` / ``chi_square`` when the smaller side of a column has at
most 1,000 usable values, ``wasserstein`` / ``jensen_shannon`` above (see
``_registry``). Null, NaN and +-inf are not values: they are counted, not
tested. A column that cannot be tested gets a status (:data:`STATUSES`).
"""

from shipyard.monitoring._api import drift_report
from shipyard.monitoring._base import DriftTest
from shipyard.monitoring._column import Column
from shipyard.monitoring._monitors import MonitorRun, create_monitor, monitor_results, run_monitor
from shipyard.monitoring._reference import Reference, prepare_reference
from shipyard.monitoring._registry import AUTO_THRESHOLD, available_tests, get_test, register_test
from shipyard.monitoring._report import STATUSES, ColumnDrift, DriftReport, Histogram

__all__ = [
    "AUTO_THRESHOLD",
    "STATUSES",
    "Column",
    "ColumnDrift",
    "DriftReport",
    "DriftTest",
    "Histogram",
    "MonitorRun",
    "Reference",
    "available_tests",
    "create_monitor",
    "drift_report",
    "get_test",
    "monitor_results",
    "prepare_reference",
    "register_test",
    "run_monitor",
]
