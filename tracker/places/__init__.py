"""Where markers have been, in words: the countries and cities of coordinates, from the offline
reverse geocoder shipped with the tracker (``offline``) or a Nominatim server the user runs
(``nominatim``, ``TRACKER_NOMINATIM_URL``), summed up as places visited (``visited``)."""
