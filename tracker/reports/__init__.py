"""Reports a fleet manager asks for, over several markers and a period: trips, stops, events and
a daily summary (``rows``), as JSON, CSV or an Excel workbook (``render``)."""
