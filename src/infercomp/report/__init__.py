"""Reports: what people read (console tables) made from the result tree."""
