"""Deployments: canary and A/B judgement, rollout decisions (pure, in ``keel.deploy.judge``)."""
