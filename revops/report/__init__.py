"""`revops report`: an HTML report with charts from the plugin's database or a simulated run."""
