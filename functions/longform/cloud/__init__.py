"""The cloud path: Firebase entry points' logic, Inngest functions, the Firestore poller.

Only this package (and ``functions/main.py``) imports Firebase and Inngest; the domain,
ports and workflow never do.
"""
