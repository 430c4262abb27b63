print("meshtop")
