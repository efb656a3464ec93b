"""nasface's data layer: face sources, verification pairs and the cached proxy task.

Sources: ``synthetic`` (generated, the default), ``orl`` (bundled), a folder of
identity sub-folders, and MXNet RecordIO (insightface's train.rec/train.idx, read
without mxnet).  Verification pairs come from held-out identities or an
insightface ``.bin``.  Every mistake in the user's data raises ``NasfaceError``
with one line naming the file and the problem.
"""

from nasface.data.base import FaceSet, FaceSource, PairSet
from nasface.data.binfile import check_pairs_file, read_bin
from nasface.data.proxy import ProxyData, proxy_data
from nasface.data.sources import check_training_source, describe, open_source

__all__ = ["FaceSet", "FaceSource", "PairSet", "ProxyData", "check_pairs_file", "check_training_source",
           "describe", "open_source", "proxy_data", "read_bin"]
