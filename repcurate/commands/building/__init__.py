"""The pieces of ``build`` (:mod:`repcurate.commands.build`): the checked request, the steps, the manifest, the
result."""
