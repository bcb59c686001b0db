from ehr_sandbox.server import main

main()
