"""The HTTP layer for Django REST framework: views and serializers, no policy."""
