"""Dockyard's registry server: distribution spec v2 / OCI distribution, search, auth, GC.

Modules: ``storage`` (driver interface, filesystem driver), ``content`` (pure rules for
names, tags, digests, manifests), ``store`` (layout and content model), ``gc``, ``auth``, ``config``, ``app`` (HTTP API routes and handlers), ``uploads``
(streaming request bodies into uploads), ``responses`` (paging, Accept, streamed answers),
``proxy`` (pull-through cache), ``notify`` (webhooks), ``server`` (listening, TLS, workers)
and ``cli``.
"""
