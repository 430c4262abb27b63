print("meshproxy")
