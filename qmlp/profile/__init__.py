"""Latency and energy per inference: measured on a board, modelled or estimated without one.

Modules: ``latency`` (three latency layers, statistics), ``energy`` (formulas on rail traces),
``power_model`` (estimate from resources and toggle rates), ``activity`` (toggle rates measured in
Verilator), ``report`` (profile.json + table), ``plots`` (PNGs), ``run`` (the profiling flow).
"""
