"""In-lap cues: a coached lap's improvements said to the driver on the next lap, before each corner, once."""
