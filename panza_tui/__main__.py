from panza_tui.cli import main

main()
