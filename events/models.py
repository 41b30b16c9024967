# The models of this app arrive with its own issue; the app exists so the layout is whole.
