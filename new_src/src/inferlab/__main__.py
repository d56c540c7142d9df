from inferlab.cli.app import main

main()
