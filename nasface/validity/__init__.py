"""Validity against published full training: do the proxy's rankings agree with the published tables?

``published`` reads the published results (a package resource, committed with its sources);
``pairs`` counts how a ranking orders the published pairs of a group; ``validate`` trains the
networks nasface can build under a proxy and analyses the log; ``page`` draws the result.
"""
