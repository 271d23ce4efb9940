"""The commands as library calls, one layer above the capabilities: ``build`` (:mod:`.build`), ``check``
(:mod:`.check`), ``confirm`` (:mod:`.confirm`) and ``doctor`` (:mod:`.doctor`). Each returns a result with
``to_dict()`` and ``passed()``; ``report/`` renders them. Nothing below this package imports it (an
import-linter contract); :mod:`repcurate` re-exports the calls."""
