VALUE = "pp-two"
