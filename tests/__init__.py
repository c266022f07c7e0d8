"""The test suite. A package so that ``tests.custom_nets`` and ``tests.scripted_envs`` can be
imported by name (``--network tests.custom_nets:BranchyQNet``), as a user's own module would be."""
