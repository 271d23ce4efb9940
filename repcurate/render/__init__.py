"""Drawing, below the checks and the views: matplotlib figures as ``data:`` URIs (``figures``), file and tensor
thumbnails (``thumbnails``), the channel axis of a sample (``channels``) and the words for a quantizer's grid
point (``grid_points``). Checks draw their own figures with it; ``report/`` lays the results out with it.
Imports no check, view or command."""
