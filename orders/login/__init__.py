"""Signing in: limits on guessing that a stranger cannot use to lock the owner out (``limits``),
the devices an account trusts (``devices``), one-time links mailed while sign-in is limited
(``links``), and two-factor for staff (``two_factor``); their pages (``views``,
``two_factor_views``)."""
