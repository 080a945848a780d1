"""Channel adapters: one module per channel behind the interface in
``router.delivery.contracts`` (``Adapter``, ``Job``, ``Outcome``, ``ChannelContext``)."""
