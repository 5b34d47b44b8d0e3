VALUE = "pp-one"
