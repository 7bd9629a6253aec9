"""English formats for every page (Django's admin reads them too, so a created-at field and a
timeline row on one page look the same). A moment always carries its zone's name: a customer
reads their own zone, support the site's."""

DATE_FORMAT = "j M Y"  # 12 Jan 2027
DATETIME_FORMAT = "j M Y, H:i T"  # 12 Jan 2027, 14:05 CET
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = DATE_FORMAT
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "M Y"
