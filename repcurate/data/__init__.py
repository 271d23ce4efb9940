"""Reading image collections: scanning folders and lists, decoding to canonical RGB."""
