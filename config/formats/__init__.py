"""The shop's date formats (``FORMAT_MODULE_PATH``): one way to write a date or a moment on
every page, the customer's and the console's alike (``12 Jan 2027, 14:05 CET``)."""
